"""The browser chat: `session.py` holds one person's conversation, `app.py` the Gradio page."""
