// libkrb5.so.3, loaded by the first renewal (see CKrb5Loader.h for why).

#include "CKrb5Loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>

// Each pointer has the type of the libkrb5 function it holds (__typeof__), so a wrapper that
// passed the wrong arguments would not compile.
static struct {
    __typeof__(&krb5_init_context) init_context;
    __typeof__(&krb5_init_context_profile) init_context_profile;
    __typeof__(&krb5_free_context) free_context;
    __typeof__(&krb5_set_real_time) set_real_time;
    __typeof__(&krb5_unmarshal_credentials) unmarshal_credentials;
    __typeof__(&krb5_marshal_credentials) marshal_credentials;
    __typeof__(&krb5_free_creds) free_creds;
    __typeof__(&krb5_free_cred_contents) free_cred_contents;
    __typeof__(&krb5_free_data) free_data;
    __typeof__(&krb5_realm_compare) realm_compare;
    __typeof__(&krb5_cc_new_unique) cc_new_unique;
    __typeof__(&krb5_cc_initialize) cc_initialize;
    __typeof__(&krb5_cc_store_cred) cc_store_cred;
    __typeof__(&krb5_cc_destroy) cc_destroy;
    __typeof__(&krb5_unparse_name) unparse_name;
    __typeof__(&krb5_free_unparsed_name) free_unparsed_name;
    __typeof__(&krb5_get_renewed_creds) get_renewed_creds;
    __typeof__(&krb5_get_error_message) get_error_message;
    __typeof__(&krb5_free_error_message) free_error_message;
    __typeof__(&profile_init_path) profile_init_path;
    __typeof__(&profile_release) profile_release;
} krb5;

static pthread_once_t krb5_once = PTHREAD_ONCE_INIT;
static int krb5_loaded;
static char krb5_error_text[256];

static void note_failure(const char *what) {
    const char *text = what != NULL ? what : "unknown error";
    size_t index = 0;
    for (; text[index] != '\0' && index + 1 < sizeof(krb5_error_text); index++) krb5_error_text[index] = text[index];
    krb5_error_text[index] = '\0';
}

static void load_krb5(void) {
    // MIT krb5's soname (Debian's libkrb5-3), from the default library path only (no RPATH).
    void *library = dlopen("libkrb5.so.3", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        note_failure(dlerror());
        return;
    }
    // Every symbol or none: a half-resolved table would call through NULL.
#define RESOLVE(field, name)                               \
    do {                                                   \
        *(void **)(&krb5.field) = dlsym(library, name);    \
        if (krb5.field == NULL) {                          \
            note_failure(dlerror());                       \
            return;                                        \
        }                                                  \
    } while (0)
    RESOLVE(init_context, "krb5_init_context");
    RESOLVE(init_context_profile, "krb5_init_context_profile");
    RESOLVE(free_context, "krb5_free_context");
    RESOLVE(set_real_time, "krb5_set_real_time");
    RESOLVE(unmarshal_credentials, "krb5_unmarshal_credentials");
    RESOLVE(marshal_credentials, "krb5_marshal_credentials");
    RESOLVE(free_creds, "krb5_free_creds");
    RESOLVE(free_cred_contents, "krb5_free_cred_contents");
    RESOLVE(free_data, "krb5_free_data");
    RESOLVE(realm_compare, "krb5_realm_compare");
    RESOLVE(cc_new_unique, "krb5_cc_new_unique");
    RESOLVE(cc_initialize, "krb5_cc_initialize");
    RESOLVE(cc_store_cred, "krb5_cc_store_cred");
    RESOLVE(cc_destroy, "krb5_cc_destroy");
    RESOLVE(unparse_name, "krb5_unparse_name");
    RESOLVE(free_unparsed_name, "krb5_free_unparsed_name");
    RESOLVE(get_renewed_creds, "krb5_get_renewed_creds");
    RESOLVE(get_error_message, "krb5_get_error_message");
    RESOLVE(free_error_message, "krb5_free_error_message");
    RESOLVE(profile_init_path, "profile_init_path");
    RESOLVE(profile_release, "profile_release");
#undef RESOLVE
    krb5_loaded = 1;
}

static int krb5_available(void) {
    pthread_once(&krb5_once, load_krb5);
    return krb5_loaded;
}

const char *ccached_krb5_load_error(void) {
    pthread_once(&krb5_once, load_krb5);
    return krb5_loaded ? NULL : krb5_error_text;
}

krb5_error_code ccached_krb5_init_context(krb5_context *context) {
    if (!krb5_available()) return ENOSYS;
    return krb5.init_context(context);
}

krb5_error_code ccached_krb5_init_context_profile(profile_t profile, krb5_flags flags, krb5_context *context) {
    if (!krb5_available()) return ENOSYS;
    return krb5.init_context_profile(profile, flags, context);
}

long ccached_profile_init_path(const_profile_filespec_list_t files, profile_t *profile) {
    if (!krb5_available()) return ENOSYS;
    return krb5.profile_init_path(files, profile);
}

// Everything below takes a context or a profile, which only exist once the library is loaded.

void ccached_profile_release(profile_t profile) {
    if (krb5_available()) krb5.profile_release(profile);
}

void ccached_krb5_free_context(krb5_context context) {
    if (krb5_available()) krb5.free_context(context);
}

krb5_error_code ccached_krb5_set_real_time(krb5_context context, krb5_timestamp seconds, krb5_int32 microseconds) {
    if (!krb5_available()) return ENOSYS;
    return krb5.set_real_time(context, seconds, microseconds);
}

krb5_error_code ccached_krb5_unmarshal_credentials(krb5_context context, const krb5_data *data,
                                                   krb5_creds **creds_out) {
    if (!krb5_available()) return ENOSYS;
    return krb5.unmarshal_credentials(context, data, creds_out);
}

krb5_error_code ccached_krb5_marshal_credentials(krb5_context context, krb5_creds *in_creds, krb5_data **data_out) {
    if (!krb5_available()) return ENOSYS;
    return krb5.marshal_credentials(context, in_creds, data_out);
}

void ccached_krb5_free_creds(krb5_context context, krb5_creds *creds) {
    if (krb5_available()) krb5.free_creds(context, creds);
}

void ccached_krb5_free_cred_contents(krb5_context context, krb5_creds *creds) {
    if (krb5_available()) krb5.free_cred_contents(context, creds);
}

void ccached_krb5_free_data(krb5_context context, krb5_data *data) {
    if (krb5_available()) krb5.free_data(context, data);
}

krb5_boolean ccached_krb5_realm_compare(krb5_context context, krb5_const_principal first,
                                        krb5_const_principal second) {
    if (!krb5_available()) return 0;
    return krb5.realm_compare(context, first, second);
}

krb5_error_code ccached_krb5_cc_new_unique(krb5_context context, const char *type, const char *hint,
                                           krb5_ccache *cache) {
    if (!krb5_available()) return ENOSYS;
    return krb5.cc_new_unique(context, type, hint, cache);
}

krb5_error_code ccached_krb5_cc_initialize(krb5_context context, krb5_ccache cache, krb5_principal principal) {
    if (!krb5_available()) return ENOSYS;
    return krb5.cc_initialize(context, cache, principal);
}

krb5_error_code ccached_krb5_cc_store_cred(krb5_context context, krb5_ccache cache, krb5_creds *creds) {
    if (!krb5_available()) return ENOSYS;
    return krb5.cc_store_cred(context, cache, creds);
}

krb5_error_code ccached_krb5_cc_destroy(krb5_context context, krb5_ccache cache) {
    if (!krb5_available()) return ENOSYS;
    return krb5.cc_destroy(context, cache);
}

krb5_error_code ccached_krb5_unparse_name(krb5_context context, krb5_const_principal principal, char **name) {
    if (!krb5_available()) return ENOSYS;
    return krb5.unparse_name(context, principal, name);
}

void ccached_krb5_free_unparsed_name(krb5_context context, char *name) {
    if (krb5_available()) krb5.free_unparsed_name(context, name);
}

krb5_error_code ccached_krb5_get_renewed_creds(krb5_context context, krb5_creds *creds, krb5_principal client,
                                               krb5_ccache cache, const char *in_tkt_service) {
    if (!krb5_available()) return ENOSYS;
    return krb5.get_renewed_creds(context, creds, client, cache, in_tkt_service);
}

const char *ccached_krb5_get_error_message(krb5_context context, krb5_error_code code) {
    if (!krb5_available()) return NULL;
    return krb5.get_error_message(context, code);
}

void ccached_krb5_free_error_message(krb5_context context, const char *message) {
    if (krb5_available()) krb5.free_error_message(context, message);
}
