"""Payment outcomes straight from payment providers: one module per provider maps its signed webhook
events onto the contract's payment events (docs/providers.md). ``route.py`` serves them on the gateway."""
