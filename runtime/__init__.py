"""Moorage engine: containers straight on the Linux kernel.

This package never imports Django. Each container verb is one public function in
``runtime.containers``; the CLI (``runtime.cli``), the dashboard's Celery tasks and its
consumers call those functions and nothing deeper.
"""

__version__ = "0.1.0"
API_VERSION = "1.45"
