"""What both HTTP apps share: the OpenAI-compatible server (`posttrain.serving`) and the labeling app
(`posttrain.labeling`) may import it, and it imports neither.

    guard.py       the checks before a route: Host allow-list, auth before the body, body limits
                   counted as bytes arrive and timed, JSON that is text
"""
