"""Stream processing: provider adapters, the status lattice and the Faust agents around them."""
