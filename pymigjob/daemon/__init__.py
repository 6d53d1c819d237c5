"""The reference daemon (aiohttp): see app.py."""
