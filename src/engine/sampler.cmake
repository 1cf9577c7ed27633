# The sampler has its own target so it can land independently of the rest of the engine layer.
nibble_add_library(sampler SOURCES sampler.cpp DEPS nibble_base nibble_engine)
nibble_add_test(sampler_test SOURCES sampler_test.cpp DEPS nibble_sampler LABELS unit)
