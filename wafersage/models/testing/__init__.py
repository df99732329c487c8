"""Test fixtures that ship with the package: an OpenAI-compatible test server and a tiny Qwen3-VL built from config."""
