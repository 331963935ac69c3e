"""OpenAI-compatible serving: the app (app.py), dynamic batching (batcher.py), the wire format
(protocol.py), token → content-part decoding (text.py) and the chat page (static/chat.html)."""
