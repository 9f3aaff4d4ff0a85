# The IBKR Client Portal Gateway, as IBKR ships it, with ips.allow opened to the compose
# network (172.30.0.0/24 in compose.yaml): without it the gateway answers "Access Denied"
# to cpgw-tray and to your browser, whose requests arrive from the network's gateway.
FROM eclipse-temurin:17-jre

RUN apt-get update && apt-get install -y --no-install-recommends unzip \
    && rm -rf /var/lib/apt/lists/*
ADD https://download2.interactivebrokers.com/portal/clientportal.gw.zip /tmp/gw.zip
RUN mkdir /opt/clientportal.gw && unzip -q /tmp/gw.zip -d /opt/clientportal.gw \
    && rm /tmp/gw.zip \
    && sed -i 's/^\( *\)allow:\(\r\?\)$/&\n\1    - 172.30.0.*\2/' /opt/clientportal.gw/root/conf.yaml

WORKDIR /opt/clientportal.gw
EXPOSE 5000
CMD ["sh", "bin/run.sh", "root/conf.yaml"]
