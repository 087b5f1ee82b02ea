# Debian packages, made in a build directory with `cpack -G DEB`:
#   switchboard      the host (/usr/bin/switchboard), its plugins
#                    (/usr/lib/switchboard/plugins), /etc/switchboard/switchboard.toml
#                    (a conffile), the hardened systemd unit and its system user
#   switchboard-dev  the SDK headers, the SwitchboardSDK CMake package, the
#                    contract test kit and its runner (/usr/bin/switchboard-contract)
# The top-level CMakeLists.txt puts the SDK's install rules in the `dev`
# component and the host's and plugins' in `runtime`. The files below are
# EXCLUDE_FROM_ALL: a plain `cmake --install` (the SDK test's prefix) leaves
# /etc alone; the packages, built component by component, have them.
# Checked by tests/package/package_test.sh (CTest package/deb).

set(_sb_pkg ${CMAKE_CURRENT_LIST_DIR})

install(FILES ${_sb_pkg}/switchboard.toml DESTINATION /etc/switchboard
        COMPONENT runtime EXCLUDE_FROM_ALL)
install(FILES ${_sb_pkg}/switchboard.service DESTINATION lib/systemd/system
        COMPONENT runtime EXCLUDE_FROM_ALL)
install(FILES ${_sb_pkg}/sysusers.conf DESTINATION lib/sysusers.d RENAME switchboard.conf
        COMPONENT runtime EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/operations.md
              ${PROJECT_SOURCE_DIR}/docs/protocol.md
        DESTINATION share/doc/switchboard COMPONENT runtime EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/grafana/switchboard-dashboard.json
        DESTINATION share/doc/switchboard/examples COMPONENT runtime EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/docs/plugins.md
        DESTINATION share/doc/switchboard-dev COMPONENT dev EXCLUDE_FROM_ALL)

set(CPACK_PACKAGE_NAME switchboard)
set(CPACK_PACKAGE_VENDOR "Switchboard")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Switchboard maintainers <maintainers@users.noreply.b-seed-9a386b4a.example>"
    CACHE STRING "Maintainer of the Debian packages")
# Installed with DESTDIR into the staging root and prefix /usr, so that the
# absolute /etc destination lands in the package, never in this machine's /etc.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
# CPACK_STRIP_FILES leaves archives alone: the contract kit's loses its debug info.
set(CPACK_PRE_BUILD_SCRIPTS ${_sb_pkg}/strip-archives.cmake)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME switchboard)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SUGGESTS "nats-server, postgresql, pgbouncer, prometheus")
# The first line is the summary (CPACK_PACKAGE_DESCRIPTION_SUMMARY is left
# unset: CPack would put it before both packages' descriptions).
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
"real-time messaging host with bus, storage and feature plugins
Switchboard serves WebSocket and HTTP chat clients and loads everything else
as shared-library plugins declared in a TOML file: the bus that links several
hosts (in-process, NATS, or a SQL table that works behind PgBouncer), the
storage that keeps conversations (SQLite, PostgreSQL), and chat features
(reactions, pins, typing, read receipts).

This package has the host, the in-tree plugins, a single-node configuration
in /etc/switchboard and a hardened systemd unit running as the switchboard
system user.")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
  ${_sb_pkg}/debian/conffiles ${_sb_pkg}/debian/postinst ${_sb_pkg}/debian/prerm ${_sb_pkg}/debian/postrm)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME switchboard-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# The headers include Boost's; the contract kit links GoogleTest; the runner
# loads plugins the way this version's host does.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "switchboard (= ${PROJECT_VERSION}), libboost-dev (>= 1.81), libgtest-dev")
set(CPACK_DEBIAN_DEV_DESCRIPTION
"SDK and contract test kit for Switchboard plugins
Headers, the SwitchboardSDK CMake package (find_package(SwitchboardSDK),
switchboard_add_plugin()) and the contract test kit with its runner,
switchboard-contract, for writing bus, storage and feature plugins for the
Switchboard messaging host and proving them before deploying.")

include(CPack)
