"""The course's chat app (lesson 06): a FastAPI endpoint that relays Claude's stream to a browser page.

    from course_utils.chat_app import AppServer, create_app
    with AppServer(create_app()) as app:
        print(app.url)          # open it: a chat page that streams, stops and keeps history

Or from a shell: `python -m course_utils.chat_app --port 8000`.
"""

from .app import create_app, upstream_client
from .client import stream_chat
from .errors import ChatError
from .runner import AppServer, server_errors
from .schema import ChatMessage, ChatRequest
from .settings import ChatSettings

__all__ = [
    "AppServer",
    "ChatError",
    "ChatMessage",
    "ChatRequest",
    "ChatSettings",
    "create_app",
    "server_errors",
    "stream_chat",
    "upstream_client",
]
