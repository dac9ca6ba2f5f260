int ninep_placeholder(void);
