"""Input and output contracts as YAML data, and the expectation suites built from them."""
