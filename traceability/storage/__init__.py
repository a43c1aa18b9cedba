"""The only code that imports asyncpg: pool lifecycle, migrations and one repo per aggregate."""
