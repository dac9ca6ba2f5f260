#include "CNinePShims.h"
int ninep_placeholder(void){return 0;}
