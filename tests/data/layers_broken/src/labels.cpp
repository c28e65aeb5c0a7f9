#include "pipeline.hpp"
