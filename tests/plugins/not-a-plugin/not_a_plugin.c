/* Test fixture: a perfectly good shared object that is not a plugin at all
 * (no tg_plugin_* symbols). */
__attribute__((visibility("default"))) int not_a_plugin_answer(void) { return 42; }
