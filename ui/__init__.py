"""Browser chat (Gradio). Not built yet: the chat app is tracked as its own issue."""
