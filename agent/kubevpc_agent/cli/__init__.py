"""``kubevpc``: dpservice-cli's verbs over any server of the dpdkironcore.v1 contract."""
