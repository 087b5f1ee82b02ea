// The one translation unit that compiles Asio and Beast (separate
// compilation keeps every other file's build light).
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
