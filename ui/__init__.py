"""The browser app: `app.py` is the Gradio chat page around `crs.chat` (one person's conversation
logic, no web framework) and `lab.py` the policy lab tab around `crs.lab`."""
