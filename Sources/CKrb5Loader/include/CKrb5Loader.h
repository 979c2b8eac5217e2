#ifndef CCACHED_CKRB5LOADER_H
#define CCACHED_CKRB5LOADER_H

// The libkrb5 functions ticket renewal uses, loaded with libkrb5.so.3 on first use (a renewal)
// instead of at every daemon start: linked, libkrb5 and the five libraries it needs (libk5crypto,
// libkrb5support, libcom_err, libkeyutils, libresolv) are mapped and bound (-z now) before main
// runs, though most daemons never renew a ticket (cold start, Docs/performance.md).
//
// Each ccached_X is libkrb5's X with its arguments and return value. When libkrb5.so.3 cannot be
// loaded, the context constructors return ENOSYS (a context is needed for everything else, so no
// other function is then reached) and ccached_krb5_load_error says why.

#include <krb5/krb5.h>
#include <profile.h>

/// Why libkrb5.so.3 could not be loaded (dlerror's text), or NULL when it is loaded or was never
/// needed yet.
const char *ccached_krb5_load_error(void);

krb5_error_code ccached_krb5_init_context(krb5_context *context);
krb5_error_code ccached_krb5_init_context_profile(profile_t profile, krb5_flags flags, krb5_context *context);
void ccached_krb5_free_context(krb5_context context);
krb5_error_code ccached_krb5_set_real_time(krb5_context context, krb5_timestamp seconds, krb5_int32 microseconds);
krb5_error_code ccached_krb5_unmarshal_credentials(krb5_context context, const krb5_data *data,
                                                   krb5_creds **creds_out);
krb5_error_code ccached_krb5_marshal_credentials(krb5_context context, krb5_creds *in_creds, krb5_data **data_out);
void ccached_krb5_free_creds(krb5_context context, krb5_creds *creds);
void ccached_krb5_free_cred_contents(krb5_context context, krb5_creds *creds);
void ccached_krb5_free_data(krb5_context context, krb5_data *data);
krb5_boolean ccached_krb5_realm_compare(krb5_context context, krb5_const_principal first,
                                        krb5_const_principal second);
krb5_error_code ccached_krb5_cc_new_unique(krb5_context context, const char *type, const char *hint,
                                           krb5_ccache *cache);
krb5_error_code ccached_krb5_cc_initialize(krb5_context context, krb5_ccache cache, krb5_principal principal);
krb5_error_code ccached_krb5_cc_store_cred(krb5_context context, krb5_ccache cache, krb5_creds *creds);
krb5_error_code ccached_krb5_cc_destroy(krb5_context context, krb5_ccache cache);
krb5_error_code ccached_krb5_unparse_name(krb5_context context, krb5_const_principal principal, char **name);
void ccached_krb5_free_unparsed_name(krb5_context context, char *name);
krb5_error_code ccached_krb5_get_renewed_creds(krb5_context context, krb5_creds *creds, krb5_principal client,
                                               krb5_ccache cache, const char *in_tkt_service);
const char *ccached_krb5_get_error_message(krb5_context context, krb5_error_code code);
void ccached_krb5_free_error_message(krb5_context context, const char *message);
long ccached_profile_init_path(const_profile_filespec_list_t files, profile_t *profile);
void ccached_profile_release(profile_t profile);

#endif
