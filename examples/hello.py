"""Calls the model through aigov with nothing but Python's standard library.

Run it under aigov:   aigov run -- python3 examples/hello.py "your question"
`aigov run` sets OPENAI_BASE_URL and OPENAI_API_KEY (a per-run key, not a real provider key),
exactly as the official SDKs expect, so `from openai import OpenAI; OpenAI()` works the same way.
"""
import json
import os
import sys
import urllib.error
import urllib.request

question = " ".join(sys.argv[1:]) or "Hello! Who am I talking to?"
request = urllib.request.Request(
    os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions",
    data=json.dumps({"model": "aigov-dev", "messages": [{"role": "user", "content": question}]}).encode(),
    headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"], "Content-Type": "application/json"},
)
recorded = f"(recorded in aigov session {os.environ.get('AIGOV_SESSION_ID')})"
try:
    with urllib.request.urlopen(request) as response:
        answer = json.load(response)["choices"][0]["message"]["content"]
except urllib.error.HTTPError as error:
    # A refusal is recorded too: `aigov sessions show` tells why.
    print(recorded, file=sys.stderr)
    sys.exit(f"aigov refused the call ({error.code}): {json.load(error)['error']['message']}")
print(answer)
print(recorded, file=sys.stderr)
