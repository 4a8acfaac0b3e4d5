"""Face recognition: configuration, network builders, data iterators and trainers."""
