"""The only aiohttp server code: the app factory, middleware, API routes and page routes."""
