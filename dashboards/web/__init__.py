"""The aiohttp web app: JSON API, NOC screen, customer portal, status page."""
