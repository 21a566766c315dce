"""The Models window: per Ollama host, the installed models with their cards, pulls with
progress, what is loaded; for halext admins, the server's AI client nodes
(``window.ModelsWindow`` puts them together)."""
