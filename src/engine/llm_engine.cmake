#The real model runner and the model - dir->engine start - up path(uses model / and kernels /).
nibble_add_library(llm_engine SOURCES model_runner_impl.cpp llm_engine.cpp DEPS nibble_engine nibble_sampler
                       nibble_model nibble_io nibble_base)
