"""The pages' view models: what each page shows, as plain JSON-ready data.

A page handler asks one of these for its data and answers with the HTML page or the same data as its
JSON twin (``?format=json``). ``batch`` shapes a batch view for people (pure); ``consumer`` serves the
page behind every QR code; ``console`` serves the regulator console.
"""
