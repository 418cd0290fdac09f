# Install rules: `cmake --install build [--prefix P]` (or DESTDIR=... for staging) puts
#
#   bin/ringmq, bin/ringmq-bench                  the broker and the load generator
#   lib/systemd/system/ringmq.service             hardened systemd unit (tools/ringmq.service)
#   etc/ringmq/ringmq.toml                        default configuration (tools/ringmq.toml)
#   share/doc/ringmq/README.md, doc/*.md          documentation, doc/ringmq.md the manual page
#
# Included from the top-level CMakeLists.txt after the targets exist. Paths are relative to the
# prefix (GNUInstallDirs), except that prefix /usr puts the configuration in /etc/ringmq/ (as
# GNUInstallDirs' CMAKE_INSTALL_FULL_SYSCONFDIR does); an absolute CMAKE_INSTALL_SYSCONFDIR wins.
# The unit is written at install time with the paths of that install (the prefix given to
# `cmake --install --prefix` included).
#
# The configuration file is treated as a configuration file: an etc/ringmq/ringmq.toml that differs
# from the default is never overwritten; the new default is written beside it as ringmq.toml.new.
include_guard(GLOBAL)
include(GNUInstallDirs)

set(RINGMQ_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Where the systemd unit is installed (relative to the prefix, or absolute)")

install(TARGETS ringmq RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET ringmq-bench)
  install(TARGETS ringmq-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# Documentation, keeping README.md's relative links (doc/...) valid.
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
file(GLOB _ringmq_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/doc/*.md)
install(FILES ${_ringmq_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR}/doc)

# The unit and the configuration file: both need install-time paths, so they are installed by a
# script that runs with the final CMAKE_INSTALL_PREFIX. file(INSTALL) honours DESTDIR and records
# what it installs in install_manifest.txt.
set(_ringmq_install_script [=[
  # An install directory (relative to the prefix, or absolute), as an absolute path without DESTDIR.
  function(_ringmq_abs out dir)
    if(IS_ABSOLUTE "${dir}")
      set(${out} "${dir}" PARENT_SCOPE)
    else()
      set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
    endif()
  endfunction()
  _ringmq_abs(_bindir "@CMAKE_INSTALL_BINDIR@")
  _ringmq_abs(_etcdir "@CMAKE_INSTALL_SYSCONFDIR@/ringmq")
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr" AND "@CMAKE_INSTALL_SYSCONFDIR@" STREQUAL "etc")
    set(_etcdir "/etc/ringmq")  # as GNUInstallDirs does: prefix /usr means /etc, not /usr/etc
  endif()
  _ringmq_abs(_docdir "@CMAKE_INSTALL_DOCDIR@")
  _ringmq_abs(_unitdir "@RINGMQ_SYSTEMD_UNITDIR@")

  # The unit as shipped names the standard paths; point them at this install.
  file(READ "@PROJECT_SOURCE_DIR@/tools/ringmq.service" _unit)
  foreach(_from_to "/usr/bin/|${_bindir}/" "/etc/ringmq/|${_etcdir}/"
                   "/usr/share/doc/ringmq/|${_docdir}/")
    string(REPLACE "|" ";" _pair "${_from_to}")
    list(GET _pair 0 _from)
    list(GET _pair 1 _to)
    string(FIND "${_unit}" "${_from}" _at)
    if(_at EQUAL -1)
      message(FATAL_ERROR "tools/ringmq.service no longer mentions ${_from}: update install.cmake")
    endif()
    string(REPLACE "${_from}" "${_to}" _unit "${_unit}")
  endforeach()
  set(_staged "@PROJECT_BINARY_DIR@/install/ringmq.service")
  file(WRITE "${_staged}" "${_unit}")
  file(INSTALL DESTINATION "${_unitdir}" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${_staged}")

  # The configuration: installed once, never overwritten once changed.
  set(_conf "@PROJECT_SOURCE_DIR@/tools/ringmq.toml")
  set(_installed "$ENV{DESTDIR}${_etcdir}/ringmq.toml")
  set(_changed FALSE)
  if(EXISTS "${_installed}")
    file(SHA256 "${_installed}" _old_sum)
    file(SHA256 "${_conf}" _new_sum)
    if(NOT _old_sum STREQUAL _new_sum)
      set(_changed TRUE)
    endif()
  endif()
  if(_changed)
    message(STATUS "Keeping: ${_installed} (the new default: ringmq.toml.new)")
    file(INSTALL DESTINATION "${_etcdir}" TYPE FILE RENAME ringmq.toml.new
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${_conf}")
  else()
    file(INSTALL DESTINATION "${_etcdir}" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${_conf}")
  endif()
]=])
string(CONFIGURE "${_ringmq_install_script}" _ringmq_install_script @ONLY)
install(CODE "${_ringmq_install_script}")
