/* A PKCS#11 module for tests: SoftHSM2 (or $TIUP_TEST_REAL_PKCS11) with the faults
 * SoftHSM2 cannot produce. It forwards every call to the real module, except:
 *
 * - $TIUP_TEST_NO_PSS=1: the RSA-PSS mechanisms are not listed (C_GetMechanismList), have
 *   no info (C_GetMechanismInfo) and cannot start a signature (C_SignInit): a token that
 *   cannot make TiUP's signatures ("mechanism not supported"). $TIUP_TEST_NO_PSS=hashing:
 *   only the hashing PSS mechanisms go; plain CKM_RSA_PKCS_PSS (over a digest tiup
 *   computes) stays, and tiup must fall back to it.
 * - $TIUP_TEST_PIN_STATE=FILE: a PIN retry counter, as hardware tokens keep one (SoftHSM2
 *   has none): wrong PINs are counted in FILE; C_GetTokenInfo reports
 *   CKF_USER_PIN_COUNT_LOW, then CKF_USER_PIN_FINAL_TRY, then CKF_USER_PIN_LOCKED, and
 *   after $TIUP_TEST_PIN_TRIES (default 3) wrong PINs C_Login says CKR_PIN_LOCKED.
 * - $TIUP_TEST_TOKENINFO_FAILS=N: the first N calls of C_GetTokenInfo in the process
 *   answer CKR_GENERAL_ERROR, as SoftHSM2's does now and then while another process logs
 *   in to a token of the same directory.
 *
 * Built by tests/support/softhsm.py with cc. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST shim;

static int blocked(CK_MECHANISM_TYPE m) {
    const char *mode = getenv("TIUP_TEST_NO_PSS");
    if (mode == NULL) return 0;
    return (m == CKM_RSA_PKCS_PSS && strcmp(mode, "hashing") != 0) ||
           m == CKM_SHA1_RSA_PKCS_PSS || m == CKM_SHA256_RSA_PKCS_PSS || m == CKM_SHA384_RSA_PKCS_PSS ||
           m == CKM_SHA512_RSA_PKCS_PSS || m == CKM_SHA224_RSA_PKCS_PSS;
}

static CK_RV mech_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count) {
    CK_ULONG n = 0, k = 0, i;
    CK_RV rv = real->C_GetMechanismList(slot, NULL, &n);
    if (rv != CKR_OK) return rv;
    CK_MECHANISM_TYPE *buf = calloc(n ? n : 1, sizeof *buf);
    if (!buf) return CKR_HOST_MEMORY;
    rv = real->C_GetMechanismList(slot, buf, &n);
    if (rv != CKR_OK) { free(buf); return rv; }
    for (i = 0; i < n; i++) if (!blocked(buf[i])) buf[k++] = buf[i];
    if (list == NULL) { *count = k; free(buf); return CKR_OK; }
    if (*count < k) { *count = k; free(buf); return CKR_BUFFER_TOO_SMALL; }
    memcpy(list, buf, k * sizeof *buf);
    *count = k;
    free(buf);
    return CKR_OK;
}

static CK_RV mech_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info) {
    if (blocked(type)) return CKR_MECHANISM_INVALID;
    return real->C_GetMechanismInfo(slot, type, info);
}

static CK_RV sign_init(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key) {
    if (m != NULL && blocked(m->mechanism)) return CKR_MECHANISM_INVALID;
    return real->C_SignInit(s, m, key);
}

static int read_fails(const char *path) {
    int n = 0;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%d", &n) != 1) n = 0;
        fclose(f);
    }
    return n;
}

static void write_fails(const char *path, int n) {
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%d\n", n);
        fclose(f);
    }
}

static int max_tries(void) {
    const char *s = getenv("TIUP_TEST_PIN_TRIES");
    return s != NULL ? atoi(s) : 3;
}

static CK_RV login(CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len) {
    const char *path = getenv("TIUP_TEST_PIN_STATE");
    if (path == NULL || user != CKU_USER) return real->C_Login(s, user, pin, len);
    int n = read_fails(path);
    if (n >= max_tries()) return CKR_PIN_LOCKED;
    CK_RV rv = real->C_Login(s, user, pin, len);
    if (rv == CKR_PIN_INCORRECT) write_fails(path, n + 1);
    else if (rv == CKR_OK) write_fails(path, 0);
    return rv;
}

static int token_info_calls;

static CK_RV token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
    const char *fails = getenv("TIUP_TEST_TOKENINFO_FAILS");
    if (fails != NULL && token_info_calls++ < atoi(fails)) return CKR_GENERAL_ERROR;
    const char *path = getenv("TIUP_TEST_PIN_STATE");
    CK_RV rv = real->C_GetTokenInfo(slot, info);
    if (rv != CKR_OK || path == NULL) return rv;
    int n = read_fails(path), m = max_tries();
    if (n >= m) info->flags |= CKF_USER_PIN_LOCKED;
    else if (n == m - 1) info->flags |= CKF_USER_PIN_FINAL_TRY;
    else if (n > 0) info->flags |= CKF_USER_PIN_COUNT_LOW;
    return rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
    if (real == NULL) {
        const char *path = getenv("TIUP_TEST_REAL_PKCS11");
        void *h = dlopen(path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) return CKR_GENERAL_ERROR;
        CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
        if (get == NULL) return CKR_GENERAL_ERROR;
        CK_RV rv = get(&real);
        if (rv != CKR_OK) return rv;
        shim = *real;
        shim.C_GetMechanismList = mech_list;
        shim.C_GetMechanismInfo = mech_info;
        shim.C_SignInit = sign_init;
        shim.C_Login = login;
        shim.C_GetTokenInfo = token_info;
    }
    *out = &shim;
    return CKR_OK;
}
