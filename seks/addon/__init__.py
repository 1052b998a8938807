"""The proxy side: providers, policy, token swap and the mitmproxy hooks that call them in order.

Loadable under plain mitmproxy: ``mitmdump -s seks/addon/script.py``.
"""
