"""The pure domain core: no faust, aiokafka or aiohttp imports here."""
