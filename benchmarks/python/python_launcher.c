/* `python3` on the shared libpython: the same main() as the python3 binary,
 * linked against libpython3.X.so like every embedding host (and the
 * pycroscope CLI). Debian's /usr/bin/python3.X links libpython statically and
 * runs noticeably faster than the shared library, so overhead.sh takes this
 * launcher as the unprofiled baseline: all modes then run the same libpython.
 *
 *   cc -O2 python_launcher.c $(pkg-config --cflags --libs python3-embed)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

int main(int argc, char** argv) { return Py_BytesMain(argc, argv); }
