// libFuzzer's driver, callable from a program that has its own main (compiler-rt's
// FuzzerInterface.h declares it the same way). Linked in by -sanitize=fuzzer.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
