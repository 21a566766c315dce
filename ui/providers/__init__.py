"""The providers window: routes and their health, a route's models, halext's AI client
nodes (``panel.ProvidersPanel`` puts them together)."""
