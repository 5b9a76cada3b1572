"""Model layer: options and their rules, ownership labels, plans (Action, Observed), buildout's configuration."""
