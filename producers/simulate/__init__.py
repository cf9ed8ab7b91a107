"""``livemetrics simulate``: realistic storefront traffic, sent through the public gateway only."""
