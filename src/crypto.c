/*
 * crypto.c — provider API keys sealed with AES-256-GCM.
 *
 * A sealed key is one bytea:
 *
 *   version (1 byte, = 1) | key id (4) | nonce (12) | ciphertext | tag (16)
 *
 * The AES key is derived from the master secret (llm_gateway.master_key, or
 * the content of llm_gateway.master_key_file) with SHA-256 under a domain
 * label, so that any operator-chosen string is a valid setting and a bad value
 * can never be echoed back by a GUC check error.  The key id is a second,
 * differently-labelled digest: it tells "sealed under another master key"
 * apart from "corrupted" without revealing anything about the key.
 *
 * The additional authenticated data is the owner context ("provider:NAME"),
 * so a sealed key copied onto another provider's row does not decrypt.
 *
 * Decryption has no SQL entry point: only the request path (and the
 * re-sealing of llm_rotate_master_key(), in rotate.c) calls it, and the
 * plaintext lives in palloc'd memory that lg_secret_free() wipes.
 *
 * Rotation: while llm_gateway.previous_master_key (or _file) is set, keys
 * sealed under it still open, so calls keep working between changing the
 * master key and re-sealing every stored key.
 */
#include "llm_gateway.h"

#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define SEAL_VERSION      1
#define KEY_ID_LEN        4
#define NONCE_LEN         12
#define TAG_LEN           16
#define HEADER_LEN        (1 + KEY_ID_LEN + NONCE_LEN)
#define MAX_KEY_FILE_SIZE 4096

typedef struct MasterKey
{
	unsigned char key[32];
	unsigned char id[KEY_ID_LEN];
} MasterKey;

/* Key-file cache: re-read only when the file changes. */
typedef struct KeyFileCache
{
	bool      valid;
	char      path[MAXPGPATH];
	dev_t     dev;
	ino_t     ino;
	time_t    mtime;
	off_t     size;
	MasterKey mk;
} KeyFileCache;

/* The current master key, and the previous one during a rotation. */
typedef enum MasterSlot
{
	MASTER_CURRENT,
	MASTER_PREVIOUS
} MasterSlot;

static KeyFileCache key_file_cache[2];

PG_FUNCTION_INFO_V1(llm_gateway_secret_encrypt);

/* SHA-256 of label || data; no PostgreSQL call while the context lives. */
static void
labelled_sha256(const char   *label,
				const void   *data,
				size_t        len,
				unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool        ok;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(ctx, label, strlen(label) + 1) == 1 &&
		 EVP_DigestUpdate(ctx, data, len) == 1 &&
		 EVP_DigestFinal_ex(ctx, out, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256 digest")));
}

static void
derive_master_key(const char *secret, size_t len, MasterKey *mk)
{
	unsigned char digest[32];

	labelled_sha256("llm_gateway/master-key/v1", secret, len, mk->key);
	labelled_sha256("llm_gateway/key-id/v1", mk->key, sizeof(mk->key), digest);
	memcpy(mk->id, digest, KEY_ID_LEN);
}

/*
 * Refuse key files anyone but the server could read, as the server does for
 * its TLS key: owned by us with no group/other access, or owned by root and
 * at most group-readable.
 */
bool
lg_file_is_private(const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return false;
	if (st->st_uid == geteuid())
		return (st->st_mode & (S_IRWXG | S_IRWXO)) == 0;
	return st->st_uid == 0 &&
		   (st->st_mode & (S_IWGRP | S_IXGRP | S_IRWXO)) == 0;
}

static void
load_key_file(const char *path, KeyFileCache *cache, MasterKey *mk)
{
	struct stat st;
	char        buf[MAX_KEY_FILE_SIZE + 1];
	ssize_t     n;
	int         fd;

	fd = open(path, O_RDONLY | PG_BINARY | O_CLOEXEC);
	if (fd < 0)
		ereport(ERROR,
				(errcode(ERRCODE_LG_MASTER_KEY_MISSING),
				 errmsg("could not open master key file \"%s\": %m", path),
				 errhint("Check llm_gateway.master_key_file; a relative path "
						 "is relative to the data directory.")));
	if (fstat(fd, &st) != 0)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_LG_MASTER_KEY_MISSING),
				 errmsg("could not stat master key file \"%s\": %m", path)));
	}
	if (!lg_file_is_private(&st))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_LG_MASTER_KEY_MISSING),
				 errmsg("master key file \"%s\" is not a regular file private "
						"to the server",
						path),
				 errhint("It must be owned by the database user with mode "
						 "0600 or less, or by root with mode 0640 or less.")));
	}
	if (cache->valid && strcmp(cache->path, path) == 0 &&
		cache->dev == st.st_dev && cache->ino == st.st_ino &&
		cache->mtime == st.st_mtime && cache->size == st.st_size)
	{
		close(fd);
		*mk = cache->mk;
		return;
	}
	n = read(fd, buf, MAX_KEY_FILE_SIZE + 1);
	close(fd);
	if (n < 0 || n > MAX_KEY_FILE_SIZE)
	{
		explicit_bzero(buf, sizeof(buf));
		ereport(ERROR,
				(errcode(ERRCODE_LG_MASTER_KEY_MISSING),
				 errmsg("could not read master key file \"%s\"", path),
				 errdetail("The file must hold at most %d bytes.",
						   MAX_KEY_FILE_SIZE)));
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
					 buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_LG_MASTER_KEY_MISSING),
				 errmsg("master key file \"%s\" is empty", path)));
	derive_master_key(buf, n, mk);
	explicit_bzero(buf, sizeof(buf));

	cache->valid = true;
	strlcpy(cache->path, path, sizeof(cache->path));
	cache->dev = st.st_dev;
	cache->ino = st.st_ino;
	cache->mtime = st.st_mtime;
	cache->size = st.st_size;
	cache->mk = *mk;
}

/* One master key from its two settings; false when neither is set. */
static bool
load_master_key(MasterSlot slot, MasterKey *mk)
{
	const char *secret =
		slot == MASTER_CURRENT ? lg_master_key : lg_previous_master_key;
	const char *file = slot == MASTER_CURRENT ? lg_master_key_file
											  : lg_previous_master_key_file;

	if (secret && secret[0])
		derive_master_key(secret, strlen(secret), mk);
	else if (file && file[0])
		load_key_file(file, &key_file_cache[slot], mk);
	else
		return false;
	return true;
}

static void
get_master_key(MasterKey *mk)
{
	if (!load_master_key(MASTER_CURRENT, mk))
		ereport(ERROR,
				(errcode(ERRCODE_LG_MASTER_KEY_MISSING),
				 errmsg("no master key is configured for llm_gateway"),
				 errdetail("Provider API keys are stored encrypted and cannot "
						   "be used without it."),
				 errhint("Set llm_gateway.master_key or "
						 "llm_gateway.master_key_file in postgresql.conf and "
						 "reload the configuration.")));
}

/*
 * Run AES-256-GCM in either direction.  No PostgreSQL call happens between
 * creating and freeing the OpenSSL context, so nothing can longjmp past the
 * free.  Returns false when OpenSSL fails (for decryption: a bad tag).
 */
static bool
aes_gcm(bool                 encrypt,
		const unsigned char *key,
		const unsigned char *nonce,
		const char          *aad,
		const unsigned char *in,
		int                  inlen,
		unsigned char       *out,
		unsigned char       *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int             len;
	bool            ok;

	if (ctx == NULL)
		return false;
	ok =
		(encrypt
			 ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL)
			 : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL)) ==
			1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) ==
			1 &&
		(encrypt ? EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce)
				 : EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce)) == 1 &&
		EVP_CipherUpdate(ctx,
						 NULL,
						 &len,
						 (const unsigned char *) aad,
						 strlen(aad)) == 1 &&
		EVP_CipherUpdate(ctx, out, &len, in, inlen) == 1;
	if (ok && encrypt)
		ok = EVP_EncryptFinal_ex(ctx, out + len, &len) == 1 &&
			 EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
	else if (ok)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) ==
				 1 &&
			 EVP_DecryptFinal_ex(ctx, out + len, &len) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

bytea *
lg_secret_encrypt(const char *plain, size_t len, const char *context)
{
	MasterKey      mk;
	bytea         *sealed;
	unsigned char *p;

	if (len > 64 * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_CONFIG),
				 errmsg("secret is too long"),
				 errdetail("Secrets may be at most 65536 bytes.")));
	get_master_key(&mk);
	sealed = palloc(VARHDRSZ + HEADER_LEN + len + TAG_LEN);
	SET_VARSIZE(sealed, VARHDRSZ + HEADER_LEN + len + TAG_LEN);
	p = (unsigned char *) VARDATA(sealed);
	p[0] = SEAL_VERSION;
	memcpy(p + 1, mk.id, KEY_ID_LEN);
	if (!pg_strong_random(p + 1 + KEY_ID_LEN, NONCE_LEN))
	{
		explicit_bzero(&mk, sizeof(mk));
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random nonce")));
	}
	if (!aes_gcm(true,
				 mk.key,
				 p + 1 + KEY_ID_LEN,
				 context,
				 (const unsigned char *) plain,
				 (int) len,
				 p + HEADER_LEN,
				 p + HEADER_LEN + len))
	{
		explicit_bzero(&mk, sizeof(mk));
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not encrypt secret")));
	}
	explicit_bzero(&mk, sizeof(mk));
	return sealed;
}

/*
 * Open a sealed secret with the current master key, or with the previous
 * one during a rotation.  Raises nothing for a secret that does not open:
 * the caller says why (*plain is NULL then).
 */
LgSealStatus
lg_secret_open(const bytea *sealed, const char *context, char **plain)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(sealed);
	size_t               total = VARSIZE_ANY_EXHDR(sealed);
	size_t               len;
	MasterKey            mk;
	MasterKey            previous;
	bool                 ok;

	*plain = NULL;
	if (total < HEADER_LEN + TAG_LEN || p[0] != SEAL_VERSION)
		return LG_SEAL_BAD_FORMAT;
	get_master_key(&mk);
	if (memcmp(p + 1, mk.id, KEY_ID_LEN) != 0)
	{
		explicit_bzero(&mk, sizeof(mk));
		if (!load_master_key(MASTER_PREVIOUS, &previous) ||
			memcmp(p + 1, previous.id, KEY_ID_LEN) != 0)
		{
			explicit_bzero(&previous, sizeof(previous));
			return LG_SEAL_OTHER_KEY;
		}
		mk = previous;
		explicit_bzero(&previous, sizeof(previous));
	}
	len = total - HEADER_LEN - TAG_LEN;
	*plain = palloc(len + 1);
	ok = aes_gcm(false,
				 mk.key,
				 p + 1 + KEY_ID_LEN,
				 context,
				 p + HEADER_LEN,
				 (int) len,
				 (unsigned char *) *plain,
				 (unsigned char *) p + HEADER_LEN + len);
	explicit_bzero(&mk, sizeof(mk));
	if (!ok)
	{
		explicit_bzero(*plain, len + 1);
		pfree(*plain);
		*plain = NULL;
		return LG_SEAL_TAMPERED;
	}
	(*plain)[len] = '\0';
	return LG_SEAL_OK;
}

/* Whether a sealed secret is sealed under the current master key. */
bool
lg_secret_is_current(const bytea *sealed)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(sealed);
	MasterKey            mk;
	bool                 current;

	if (VARSIZE_ANY_EXHDR(sealed) < HEADER_LEN + TAG_LEN ||
		p[0] != SEAL_VERSION)
		return false;
	get_master_key(&mk);
	current = memcmp(p + 1, mk.id, KEY_ID_LEN) == 0;
	explicit_bzero(&mk, sizeof(mk));
	return current;
}

/*
 * Open a sealed secret or raise why not.  Errors name only the owner (a
 * provider name), never any byte of the secret.
 */
char *
lg_secret_decrypt(const bytea *sealed,
				  const char  *context,
				  const char  *owner_name)
{
	char *plain;

	switch (lg_secret_open(sealed, context, &plain))
	{
		case LG_SEAL_OK:
			return plain;
		case LG_SEAL_BAD_FORMAT:
			ereport(ERROR,
					(errcode(ERRCODE_LG_SECRET_UNREADABLE),
					 errmsg("the stored API key of provider \"%s\" is not in "
							"a format this version understands",
							owner_name),
					 errhint("Set the key again with llm_provider_set().")));
			break;
		case LG_SEAL_OTHER_KEY:
			ereport(ERROR,
					(errcode(ERRCODE_LG_SECRET_UNREADABLE),
					 errmsg("the API key of provider \"%s\" was encrypted "
							"with a different master key",
							owner_name),
					 errhint(
						 "Restore the master key it was stored with (as "
						 "llm_gateway.previous_master_key while rotating), "
						 "or set the key again with llm_provider_set().")));
			break;
		case LG_SEAL_TAMPERED:
			ereport(ERROR,
					(errcode(ERRCODE_LG_SECRET_UNREADABLE),
					 errmsg("the stored API key of provider \"%s\" failed its "
							"integrity check",
							owner_name),
					 errhint("Set the key again with llm_provider_set().")));
			break;
	}
	return NULL; /* keep the compiler quiet */
}

void
lg_secret_free(char *secret)
{
	if (secret)
	{
		explicit_bzero(secret, strlen(secret));
		pfree(secret);
	}
}

/*
 * llm_gateway.secret_encrypt(secret text, context text) RETURNS bytea
 *
 * Used by llm_provider_set(); EXECUTE is revoked from PUBLIC.  Sealing is
 * harmless to expose to administrators; opening is not exposed at all.
 */
Datum
llm_gateway_secret_encrypt(PG_FUNCTION_ARGS)
{
	text *secret = PG_GETARG_TEXT_PP(0);
	char *context = text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_BYTEA_P(lg_secret_encrypt(VARDATA_ANY(secret),
										VARSIZE_ANY_EXHDR(secret),
										context));
}
