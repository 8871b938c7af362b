"""BSS: orders, subscriptions, unsubscription and refunds (being built)."""
