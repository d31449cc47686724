/* Not node, but an executable that looks like one to vigil's detection: named "node" and
 * exporting node_module_register, as every node binary does for native addons. */
void node_module_register(void *module);

void node_module_register(void *module)
{
    (void)module;
}

int main(void)
{
    return 0;
}
