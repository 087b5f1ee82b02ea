// A plugin whose static constructor leaves a trace: a file named for it in
// $SWITCHBOARD_TEST_SIDE_EFFECT_DIR. Built several times with different
// descriptors (see CMakeLists.txt) to show that a plugin the host refuses
// runs none of its code, and that one it loads does.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "manual_descriptor.hpp"

#ifndef TEST_SDK_MAJOR_OFFSET
#define TEST_SDK_MAJOR_OFFSET 0
#endif
#ifndef TEST_SDK_MINOR_OFFSET
#define TEST_SDK_MINOR_OFFSET 0
#endif
#ifndef TEST_MESSAGE_SIZE_OFFSET
#define TEST_MESSAGE_SIZE_OFFSET 0
#endif
#ifndef TEST_COMPILER_MAJOR_OFFSET
#define TEST_COMPILER_MAJOR_OFFSET 0
#endif
#ifndef TEST_KIND
#define TEST_KIND 1  // bus
#endif

namespace {

struct LeavesATrace {
  LeavesATrace() {
    const char* dir = std::getenv("SWITCHBOARD_TEST_SIDE_EFFECT_DIR");
    if (dir == nullptr) return;
    std::string path = std::string(dir) + "/" TEST_PLUGIN_NAME ".ran";
    if (FILE* f = std::fopen(path.c_str(), "w")) {
      std::fputs("the plugin's static constructor ran\n", f);
      std::fclose(f);
    }
  }
} leaves_a_trace;

}  // namespace

#ifndef TEST_NO_DESCRIPTOR
TEST_EXPORT_DESCRIPTOR(([] {
  auto d = ::switchboard::make_descriptor(::switchboard::PluginKind::bus, TEST_PLUGIN_NAME, "1.0.0",
                                         ::switchboard::shared_sizes_of(static_cast<const ::switchboard::Bus*>(nullptr)));
  d.sdk_major += TEST_SDK_MAJOR_OFFSET;
  d.sdk_minor += TEST_SDK_MINOR_OFFSET;
  // A struct of another size (as with another standard library build).
  d.struct_sizes.size[static_cast<int>(::switchboard::SharedStruct::health)] += TEST_MESSAGE_SIZE_OFFSET;
  d.compiler_major += TEST_COMPILER_MAJOR_OFFSET;
  d.kind = static_cast<::switchboard::PluginKind>(TEST_KIND);
  return d;
}()))
#endif
#ifndef TEST_NO_FACTORY
TEST_EXPORT_NULL_FACTORY()
#endif
