@echo off
rem Install pacs_lite on this Windows server: a virtualenv, the package, the browser bundles,
rem then "pacs-lite setup" (settings, schema, first admin; --schedule adds the Task Scheduler entries).
rem   setup.bat [--database-url mysql://...] [--orthanc-url ...] [--schedule] [--non-interactive]
setlocal
cd /d "%~dp0"

set "PY="
where py >nul 2>nul && set "PY=py -3"
if not defined PY where python >nul 2>nul && set "PY=python"
if not defined PY (
  echo Python 3.10 or newer is needed: install it from https://www.python.org/downloads/ and run setup.bat again.
  exit /b 1
)

if exist static\vendor\cornerstone\cornerstone.js goto venv
where npm >nul 2>nul
if errorlevel 1 (
  echo Node.js is needed once, to build the browser bundles: install Node.js 20 LTS from https://nodejs.org/
  echo and run setup.bat again. A release package of pacs_lite already carries the bundles.
  exit /b 1
)
echo == Building the browser bundles
call npm ci --no-audit --no-fund || exit /b 1
call npm run build || exit /b 1

:venv
if not exist .venv\Scripts\python.exe (
  echo == Creating .venv
  %PY% -m venv .venv || exit /b 1
)
echo == Installing pacs_lite into .venv
.venv\Scripts\python.exe -m pip install --quiet . || exit /b 1
.venv\Scripts\python.exe -m pacs_lite setup %*
exit /b %errorlevel%
