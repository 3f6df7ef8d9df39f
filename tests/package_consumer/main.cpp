// Downstream consumer of an installed Pycroscope (see CMakeLists.txt next to it).
#include <pycroscope.hpp>

int main() {
  PYCRO_SCOPE_N("x");
  return 0;
}
