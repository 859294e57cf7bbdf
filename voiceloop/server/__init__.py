"""`voiceloop serve`: the HTTP API, the web page and the live session view, in one process."""
