// MIT krb5 (Debian's libkrb5-dev). Declared without pkg-config: Debian's mit-krb5.pc carries
// -isystem, which SwiftPM drops; the header and libkrb5.so are found on the default paths.
#include <krb5/krb5.h>
// profile_init_path: a krb5 context from an explicit list of configuration files.
#include <profile.h>
