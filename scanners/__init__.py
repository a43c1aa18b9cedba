"""Station software that runs at farms, wholesalers and markets.

A station reads codes with a USB barcode gun or a keypad (:mod:`traceability.domain.scans`, shared with the
server's vendor page), prints batch labels and scale receipts with a QR code that opens the consumer page
(:mod:`scanners.printing`), and talks to the traceability server. The modules here that take no network or
device are pure: they turn text into typed results and data into print-ready bytes.
"""
