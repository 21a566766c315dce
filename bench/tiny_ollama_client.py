"""The baseline of ``bench_cli.py``: the smallest useful ollama-client script.

python bench/tiny_ollama_client.py URL MODEL PROMPT
"""

import sys

import ollama

client = ollama.Client(host=sys.argv[1])
for part in client.chat(
    model=sys.argv[2], messages=[{"role": "user", "content": sys.argv[3]}], stream=True
):
    print(part.message.content, end="", flush=True)
print()
