import CKrb5

var context: krb5_context?
print(krb5_init_context(&context))
