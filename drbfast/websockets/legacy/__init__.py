"""``websockets.legacy``: the names of the websockets <= 13 API over the same client."""
