#include "plugins/plugin_file.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cstddef>
#include <optional>
#include <vector>

namespace switchboard::host {

namespace {

#if defined(__x86_64__)
constexpr std::uint16_t kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr std::uint16_t kHostMachine = EM_AARCH64;
#else
constexpr std::uint16_t kHostMachine = EM_NONE;  // not checked
#endif

std::string machine_name(std::uint16_t machine) {
  switch (machine) {
    case EM_X86_64: return "x86-64";
    case EM_AARCH64: return "aarch64";
    case EM_386: return "x86";
    case EM_ARM: return "arm";
    case EM_RISCV: return "riscv";
    case EM_PPC64: return "ppc64";
    case EM_S390: return "s390";
  }
  return "ELF machine " + std::to_string(machine);
}

DescriptorProblem problem(std::string why) { return DescriptorProblem{std::move(why)}; }

// Bounds-checked reads from the file: every offset and size in it is data.
class Bytes {
 public:
  explicit Bytes(std::string_view file) : file_(file) {}

  bool contains(std::uint64_t offset, std::uint64_t size) const {
    return offset <= file_.size() && size <= file_.size() - offset;
  }

  template <class T>
  std::optional<T> read(std::uint64_t offset) const {
    if (!contains(offset, sizeof(T))) return std::nullopt;
    T value;
    std::memcpy(&value, file_.data() + offset, sizeof(T));
    return value;
  }

  std::string_view slice(std::uint64_t offset, std::uint64_t size) const {
    return contains(offset, size) ? file_.substr(offset, size) : std::string_view{};
  }

 private:
  std::string_view file_;
};

// The NUL-terminated name at `offset` of a string table, or nothing.
std::optional<std::string_view> name_at(std::string_view table, std::uint64_t offset) {
  if (offset >= table.size()) return std::nullopt;
  auto rest = table.substr(offset);
  auto end = rest.find('\0');
  if (end == std::string_view::npos) return std::nullopt;
  return rest.substr(0, end);
}

// A fixed-size text field of the descriptor: NUL-terminated inside it.
std::optional<std::string> text(const char* field, std::size_t size) {
  const void* nul = std::memchr(field, '\0', size);
  if (nul == nullptr) return std::nullopt;
  return std::string(field, static_cast<const char*>(nul) - field);
}

struct Sections {
  std::vector<Elf64_Shdr> headers;
  std::string_view names;  // the section-name string table
};

std::variant<Sections, DescriptorProblem> read_sections(const Bytes& bytes, const Elf64_Ehdr& eh) {
  if (eh.e_shoff == 0) return problem("an ELF file without section headers (stripped with --strip-sections?)");
  if (eh.e_shentsize != sizeof(Elf64_Shdr)) {
    return problem("an ELF file with " + std::to_string(eh.e_shentsize) + "-byte section headers");
  }
  auto first = bytes.read<Elf64_Shdr>(eh.e_shoff);
  if (!first) return problem("a truncated ELF file (section headers past its end)");
  // Past 0xff00 sections the real count and index live in section 0.
  std::uint64_t count = eh.e_shnum != 0 ? eh.e_shnum : first->sh_size;
  std::uint64_t names_index = eh.e_shstrndx != SHN_XINDEX ? eh.e_shstrndx : first->sh_link;
  if (count == 0 || count > UINT64_MAX / sizeof(Elf64_Shdr) || !bytes.contains(eh.e_shoff, count * sizeof(Elf64_Shdr))) {
    return problem("a truncated ELF file (section headers past its end)");
  }
  Sections s;
  s.headers.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) s.headers.push_back(*bytes.read<Elf64_Shdr>(eh.e_shoff + i * sizeof(Elf64_Shdr)));
  if (names_index >= count || s.headers[names_index].sh_type != SHT_STRTAB) {
    return problem("an ELF file without a section-name table");
  }
  const auto& names = s.headers[names_index];
  s.names = bytes.slice(names.sh_offset, names.sh_size);
  if (s.names.empty()) return problem("a truncated ELF file (section names past its end)");
  return s;
}

const Elf64_Shdr* find_section(const Sections& s, std::string_view name) {
  for (const auto& h : s.headers) {
    if (name_at(s.names, h.sh_name) == name) return &h;
  }
  return nullptr;
}

// True if the dynamic symbol table exports `symbol` (a plugin built against
// an SDK whose descriptor could only be read by loading it).
bool exports_symbol(const Bytes& bytes, const Sections& s, std::string_view symbol) {
  for (const auto& h : s.headers) {
    if (h.sh_type != SHT_DYNSYM || h.sh_entsize != sizeof(Elf64_Sym) || h.sh_link >= s.headers.size()) continue;
    const auto& strings_header = s.headers[h.sh_link];
    auto strings = bytes.slice(strings_header.sh_offset, strings_header.sh_size);
    if (!bytes.contains(h.sh_offset, h.sh_size)) continue;
    for (std::uint64_t off = 0; off + sizeof(Elf64_Sym) <= h.sh_size; off += sizeof(Elf64_Sym)) {
      auto sym = bytes.read<Elf64_Sym>(h.sh_offset + off);
      if (sym && sym->st_shndx != SHN_UNDEF && name_at(strings, sym->st_name) == symbol) return true;
    }
  }
  return false;
}

}  // namespace

std::variant<DescriptorFields, DescriptorProblem> parse_plugin_file(std::string_view file) {
  Bytes bytes(file);
  auto eh = bytes.read<Elf64_Ehdr>(0);
  if (file.size() < SELFMAG || std::memcmp(file.data(), ELFMAG, SELFMAG) != 0) {
    return problem("not an ELF shared library");
  }
  if (file.size() <= EI_CLASS) return problem("a truncated ELF file");
  if (static_cast<unsigned char>(file[EI_CLASS]) != ELFCLASS64) {
    return problem("a 32-bit ELF file, this host is 64-bit");
  }
  if (!eh) return problem("a truncated ELF file");
  if (eh->e_ident[EI_DATA] != ELFDATA2LSB) return problem("a big-endian ELF file, this host is little-endian");
  if (eh->e_type != ET_DYN) {
    return problem(eh->e_type == ET_EXEC ? "an executable, not a shared library"
                                         : "not a shared library (ELF type " + std::to_string(eh->e_type) + ")");
  }
  if (kHostMachine != EM_NONE && eh->e_machine != kHostMachine) {
    return problem("built for " + machine_name(eh->e_machine) + ", this host is " + machine_name(kHostMachine));
  }
  auto sections = read_sections(bytes, *eh);
  if (auto* p = std::get_if<DescriptorProblem>(&sections)) return std::move(*p);
  const auto& s = std::get<Sections>(sections);

  const Elf64_Shdr* section = find_section(s, kDescriptorSection);
  if (section == nullptr) {
    if (exports_symbol(bytes, s, "switchboard_plugin_descriptor")) {
      return problem(
          "a plugin built against SDK 0.4 or older, whose descriptor cannot be read without running it: rebuild it "
          "against this host's SDK (" SWITCHBOARD_SDK_VERSION ")");
    }
    return problem(std::string("not a Switchboard plugin (no ") + kDescriptorSection +
                   " section; export one with SWITCHBOARD_PLUGIN)");
  }
  auto raw = section->sh_type == SHT_NOBITS ? std::string_view{} : bytes.slice(section->sh_offset, section->sh_size);
  // The fields every layout starts with: magic, layout, size.
  constexpr std::size_t kHead = offsetof(PluginDescriptor, size) + sizeof(std::uint32_t);
  if (raw.size() < kHead || std::memcmp(raw.data(), kDescriptorMagic, sizeof kDescriptorMagic) != 0) {
    return problem(std::string("not a Switchboard plugin (its ") + kDescriptorSection +
                   " section holds no descriptor)");
  }
  std::uint32_t layout = 0;
  std::uint32_t size = 0;
  std::memcpy(&layout, raw.data() + offsetof(PluginDescriptor, layout), sizeof layout);
  std::memcpy(&size, raw.data() + offsetof(PluginDescriptor, size), sizeof size);
  // Later layouts append fields: this host reads those of its own layout.
  if (layout < kDescriptorLayout) {
    return problem("plugin descriptor layout " + std::to_string(layout) + ", this host reads layout " +
                   std::to_string(kDescriptorLayout) + " or later");
  }
  if (size < sizeof(PluginDescriptor) || size > raw.size()) {
    return problem("a plugin descriptor of layout " + std::to_string(layout) + " claims " + std::to_string(size) +
                   " bytes, its section holds " + std::to_string(raw.size()));
  }
  PluginDescriptor d;
  std::memcpy(&d, raw.data(), sizeof d);
  auto name = text(d.name, sizeof d.name);
  auto version = text(d.version, sizeof d.version);
  auto compiler = text(d.compiler_id, sizeof d.compiler_id);
  if (!name || !version || !compiler) return problem("a plugin descriptor with an unterminated text field");
  DescriptorFields f;
  f.layout = layout;
  f.sdk_major = d.sdk_major;
  f.sdk_minor = d.sdk_minor;
  f.struct_sizes = d.struct_sizes;
  std::memcpy(&f.kind, &d.kind, sizeof f.kind);
  f.name = std::move(*name);
  f.version = std::move(*version);
  f.compiler_id = std::move(*compiler);
  f.compiler_major = d.compiler_major;
  f.compiler_minor = d.compiler_minor;
  f.compiler_patch = d.compiler_patch;
  f.cxx11_abi = d.cxx11_abi;
  f.exports_factory = exports_symbol(bytes, s, kFactorySymbol);
  return f;
}

std::variant<DescriptorFields, DescriptorProblem> read_plugin_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return problem(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return problem("not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    return problem("an empty file, not an ELF shared library");
  }
  auto size = static_cast<std::size_t>(st.st_size);
  // Mapped as data: nothing in it can run.
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);
  if (map == MAP_FAILED) return problem(std::string("cannot read: ") + std::strerror(map_errno));
  auto result = parse_plugin_file(std::string_view(static_cast<const char*>(map), size));
  ::munmap(map, size);
  return result;
}

}  // namespace switchboard::host
