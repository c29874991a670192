// The prefetch hints are inline functions in include/CPrefetch.h; this file only gives the target a
// translation unit.
#include "CPrefetch.h"
