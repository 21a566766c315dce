"""Settings (Ctrl+,): the dialog (``dialog.SettingsDialog``) and one module per tab."""
