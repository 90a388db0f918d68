/* Certificates for the TLS suites, made at test time with the OpenSSL
   API in a private mkdtemp directory (removed at exit by the process
   that made it): a CA, a server certificate it signs (for "localhost",
   "alt.test" and 127.0.0.1), and an untrusted self-signed certificate
   for "localhost". */
#ifndef GREEN_TLSTEST_H_INCLUDED
#define GREEN_TLSTEST_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct tls_files {
    char dir[64];
    char ca[128], cert[128], key[128], self_cert[128], self_key[128];
};

static struct tls_files tls_files;
static pid_t tls_files_owner;

static void tls_die(const char *what)
{
    fprintf(stderr, "tlstest: %s failed\n", what);
    exit(EXIT_FAILURE);
}

static void tls_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext || !X509_add_ext(cert, ext, -1))
        tls_die("X509_add_ext");
    X509_EXTENSION_free(ext);
}

/* A certificate for cn with key, signed by issuer/issuer_key (NULL:
   self-signed); ca: a CA certificate; san: subjectAltName or NULL. */
static X509 *tls_cert(const char *cn, EVP_PKEY *key, X509 *issuer,
                      EVP_PKEY *issuer_key, int ca, const char *san)
{
    static long serial = 1;
    X509 *x = X509_new();
    if (!x)
        tls_die("X509_new");
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 2);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509 *signer = issuer ? issuer : x;
    tls_add_ext(x, signer, NID_basic_constraints,
                ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (ca)
        tls_add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    tls_add_ext(x, signer, NID_subject_key_identifier, "hash");
    if (san)
        tls_add_ext(x, signer, NID_subject_alt_name, san);
    if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
        tls_die("X509_sign");
    return x;
}

static void tls_write(const char *path, X509 *x, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (!f || (x && !PEM_write_X509(f, x)) ||
        (key && !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)))
        tls_die(path);
    fclose(f);
}

static void tls_remove_files(void)
{
    if (getpid() != tls_files_owner)
        return; /* a forked test process */
    const char *files[] = {tls_files.ca, tls_files.cert, tls_files.key,
                           tls_files.self_cert, tls_files.self_key};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(files[i]);
    rmdir(tls_files.dir);
}

/* Make the files once per process; returns them. */
static const struct tls_files *tls_make_files(void)
{
    if (tls_files_owner)
        return &tls_files;
    struct tls_files *f = &tls_files;
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/green-tls-XXXXXX",
             tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        tls_die("mkdtemp");
    tls_files_owner = getpid();
    atexit(tls_remove_files);
    snprintf(f->ca, sizeof f->ca, "%.63s/ca.pem", f->dir);
    snprintf(f->cert, sizeof f->cert, "%.63s/cert.pem", f->dir);
    snprintf(f->key, sizeof f->key, "%.63s/key.pem", f->dir);
    snprintf(f->self_cert, sizeof f->self_cert, "%.63s/self.pem", f->dir);
    snprintf(f->self_key, sizeof f->self_key, "%.63s/selfkey.pem", f->dir);
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
    EVP_PKEY *self_key = EVP_EC_gen("P-256");
    if (!ca_key || !key || !self_key)
        tls_die("EVP_EC_gen");
    X509 *ca = tls_cert("libgreen test CA", ca_key, NULL, NULL, 1, NULL);
    X509 *cert = tls_cert("localhost", key, ca, ca_key, 0,
                          "DNS:localhost,DNS:alt.test,IP:127.0.0.1");
    X509 *self = tls_cert("localhost", self_key, NULL, NULL, 0,
                          "DNS:localhost,IP:127.0.0.1");
    tls_write(f->ca, ca, NULL);
    tls_write(f->cert, cert, NULL);
    tls_write(f->key, NULL, key);
    tls_write(f->self_cert, self, NULL);
    tls_write(f->self_key, NULL, self_key);
    X509_free(ca);
    X509_free(cert);
    X509_free(self);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    EVP_PKEY_free(self_key);
    return f;
}

#endif
